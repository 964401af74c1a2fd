Feature: Opening a case for a person
  As a case worker of a national information bureau,
  I want to open a case for a person as soon as any source reports them,
  so that everything we later learn about them has one place to go,
  even while much of their identity is unknown or withheld by the other side.

  Scenario: A family reports a captured soldier whose service details are withheld
    When the case worker opens a case for the prisoner of war "Aram Testyan", reported by the family, with these identity details:
      | field              | value      |
      | nationality        | AM         |
      | date_of_birth      | 1999-03-02 |
      | sex                | male       |
      | service_number     | withheld   |
      | rank               | withheld   |
      | mother_maiden_name | unknown    |
    Then the register answers 201
    And the answer points to the new case
    And the case is at version 1
    And the case is filed as a prisoner of war case
    And the person's status is "unknown"
    And nobody is known to hold the person
    And nothing is known of the person being seen alive
    And the case is not disputed
    And the person's family_name is given as "Testyan"
    And the person's given_names is given as "Aram"
    And the person's date_of_birth is given as "1999-03-02"
    And the person's service_number is given as "withheld"
    And the person's rank is given as "withheld"
    And the person's mother_maiden_name is given as "unknown"
