Feature: The register as of a day, and as it was known then
  As an auditor for a commission of inquiry,
  I want to count and list the people each party held on a given day, both with what the register knows now and with only what had been recorded by a given instant,
  so that I can tell what happened apart from what the bureau knew when it reported.

  Three invented people. Gor's capture and later transfer were recorded as they
  happened; so was Elnur's capture. Levon's transfer to RU in August was recorded
  first, and only weeks later was it reported that AZ had captured him in June.

  Background:
    Given the case worker has opened a case for the prisoner of war "Gor Testikyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2021-05-10, according to the ICRC
    And the case worker has recorded that AZ handed the person over to RU at "Goris" on 2021-08-15, according to the ICRC
    And the case worker has opened a case for the civilian internee "Elnur Probov", a national of AZ
    And the case worker has recorded that AM captured the person at "Lachin" on 2021-06-01, according to the ICRC
    And the case worker has opened a case for the prisoner of war "Levon Probyan", a national of AM
    And the case worker has recorded that AZ handed the person over to RU at "Goris" on 2021-08-15, according to the ICRC
    And the moment the case's last entry was recorded is noted
    And the case worker has recorded that AZ captured the person at "Shusha" on 2021-06-20, according to AM

  Scenario: How many people each party held on 1 July 2021, knowing what we know now
    When the auditor counts the people held by each party as of 2021-07-01
    Then the register answers 200
    And the count is for 2021-07-01, with everything known now
    And the count by holding party is:
      | held by | people |
      | AM      | 1      |
      | AZ      | 2      |
    And 3 people are counted in all

  Scenario: How many people each party held on 1 July 2021, knowing only what had been recorded by then
    When the auditor counts the people held by each party as of 2021-07-01, as known at the noted moment
    Then the register answers 200
    And the count is for 2021-07-01, as known at the noted moment
    And the count by holding party is:
      | held by | people |
      | AM      | 1      |
      | AZ      | 1      |
      | nobody  | 1      |
    And 3 people are counted in all

  Scenario: How many people each party holds now
    When the auditor counts the people held by each party
    Then the register answers 200
    And the count by holding party is:
      | held by | people |
      | AM      | 1      |
      | RU      | 2      |
    And 3 people are counted in all

  Scenario: Who AZ held on 1 July 2021, knowing what we know now
    When the auditor lists the people held by AZ as of 2021-07-01
    Then the register answers 200
    And the list is exactly:
      | person         | held by | at     |
      | Gor Testikyan  | AZ      | Hadrut |
      | Levon Probyan  | AZ      | Shusha |

  Scenario: Who AZ held on 1 July 2021, knowing only what had been recorded by then
    When the auditor lists the people held by AZ as of 2021-07-01, as known at the noted moment
    Then the register answers 200
    And the list is exactly:
      | person         | held by | at     |
      | Gor Testikyan  | AZ      | Hadrut |

  Scenario: Nobody was recorded as held by RU on 1 July 2021
    When the auditor lists the people held by RU as of 2021-07-01
    Then the register answers 200
    And the list is empty

  Scenario: Before any case was opened, the register knew of nobody
    When the auditor counts the people held by each party as of 2021-07-01, as known at 2020-01-01T00:00:00Z
    Then the register answers 200
    And 0 people are counted in all
