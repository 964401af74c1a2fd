Feature: Parties classifying one person differently
  As a case worker of a humanitarian organisation,
  I want each party's classification of a person kept as that party's own claim, side by side with its basis and source,
  so that no party's word silently overwrites another's, and everyone can see the person's status is in doubt
  (GC III Art. 5(2): protected as a prisoner of war until a tribunal decides).

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-12-13, according to the ICRC

  Scenario: One party says prisoner of war, the other says criminal detainee
    When the case worker records that AM classified the person as a prisoner of war on 2020-12-20, on the grounds "a serviceman of the armed forces captured in uniform"
    And the case worker records that AZ classified the person as a criminal detainee on 2020-12-28, on the grounds "crossed the line of contact after the ceasefire"
    Then the register answers 201
    And 2 parties' classifications are shown
    And AM's classification is prisoner of war, on the grounds "a serviceman of the armed forces captured in uniform", according to AM
    And AZ's classification is criminal detainee, on the grounds "crossed the line of contact after the ceasefire", according to AZ
    And the case is disputed about classification
    And in the dispute about classification, AM says "AM: prisoner_of_war"
    And in the dispute about classification, AZ says "AZ: criminal_detainee"
    And the person is held by AZ at "Hadrut"

  Scenario: A party that changes its classification is judged by its latest claim
    Given the case worker has recorded that AM classified the person as a prisoner of war on 2020-12-20, on the grounds "a serviceman of the armed forces"
    And the case worker has recorded that AZ classified the person as a criminal detainee on 2020-12-28, on the grounds "crossed the line of contact after the ceasefire"
    When the case worker records that AZ classified the person as a prisoner of war on 2021-02-15, on the grounds "decision of a status review"
    Then the register answers 201
    And 2 parties' classifications are shown
    And AZ's classification is prisoner of war, on the grounds "decision of a status review", according to AZ
    And the case is not disputed
